"""The Explore page (``streamlit_app.py`` serves it beside the question page): :mod:`search_app.explore`."""

import streamlit as st

from search_app import explore
from search_app.serving import opened

st.title("Explore")
st.caption("How often the archive reports something, and where: exact matches counted over time.")
archive = opened()
explore.show(archive, archive.store.facets()["sources"])
