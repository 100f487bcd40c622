"""Is the best passage relevant, or just the least irrelevant? A margin over neutral text decides.

Cosine similarities from E5-style models sit in a narrow band, and where in it depends on the question: a
question in the archive's language scores higher against everything than one in another language. So an
absolute cut-off either refuses good English questions or answers off-topic Italian ones. Instead, each question
is also compared with a fixed set of everyday news sentences on unrelated subjects; the best passage must beat
the question's similarity to those by a margin to count as an answer.
"""

from __future__ import annotations

import functools

import numpy as np

from indexer.models.embedder import Embedder

# Calibrated with the default model on the seed article and on SQuAD-it (bench/answer_quality.py; docs/benchmarks.md).
MIN_MARGIN = 0.005

NEUTRAL_TEXTS = (
    "The city council approved the new budget after a long debate on Tuesday evening.",
    "Shares fell sharply in early trading as investors worried about rising interest rates.",
    "The team won the championship final with a goal in the last minute of extra time.",
    "Heavy rain caused flooding in several villages, and hundreds of residents were evacuated.",
    "Scientists announced the discovery of a new species of frog in the rainforest.",
    "The film festival opened with the premiere of a drama about a family in crisis.",
    "The company reported record profits for the third quarter and raised its forecast.",
    "Doctors warned that the flu season could be more severe than usual this winter.",
    "A new high-speed railway line will connect the two cities by the end of the decade.",
    "The museum reopened to the public after two years of restoration work.",
    "Police arrested three suspects after a robbery at a jewellery store downtown.",
    "The school introduced a new programme to teach children how to code.",
    "The singer announced a world tour that will begin in the spring.",
    "Researchers found that regular exercise lowers the risk of heart disease.",
    "The airline cancelled dozens of flights because of a strike by air traffic controllers.",
    "The recipe calls for flour, eggs, butter and a pinch of salt.",
    "Temperatures will drop over the weekend, with snow expected in the mountains.",
    "The novel tells the story of a young woman who leaves her village for the capital.",
    "The hotel offers rooms with a view of the harbour and a restaurant on the roof.",
    "The old castle on the hill was built in the twelfth century and is open to visitors.",
    "Il consiglio comunale ha approvato il nuovo bilancio dopo un lungo dibattito martedì sera.",
    "I titoli sono scesi bruscamente in apertura per i timori sul rialzo dei tassi di interesse.",
    "La squadra ha vinto la finale del campionato con un gol all'ultimo minuto dei supplementari.",
    "Le forti piogge hanno causato allagamenti in diversi paesi e centinaia di residenti sono stati evacuati.",
    "Gli scienziati hanno annunciato la scoperta di una nuova specie di rana nella foresta pluviale.",
    "Il festival del cinema si è aperto con la prima di un dramma su una famiglia in crisi.",
    "L'azienda ha registrato utili record nel terzo trimestre e ha alzato le previsioni.",
    "I medici avvertono che la stagione influenzale potrebbe essere più grave del solito quest'inverno.",
    "Una nuova linea ferroviaria ad alta velocità collegherà le due città entro la fine del decennio.",
    "Il museo ha riaperto al pubblico dopo due anni di lavori di restauro.",
    "La polizia ha arrestato tre sospetti dopo una rapina in una gioielleria del centro.",
    "La scuola ha introdotto un nuovo programma per insegnare ai bambini a programmare.",
    "La cantante ha annunciato un tour mondiale che inizierà in primavera.",
    "I ricercatori hanno scoperto che l'esercizio fisico regolare riduce il rischio di malattie cardiache.",
    "La compagnia aerea ha cancellato decine di voli a causa di uno sciopero dei controllori di volo.",
    "La ricetta prevede farina, uova, burro e un pizzico di sale.",
    "Le temperature caleranno nel fine settimana, con neve prevista in montagna.",
    "Il romanzo racconta la storia di una giovane donna che lascia il suo paese per la capitale.",
    "L'albergo offre camere con vista sul porto e un ristorante sulla terrazza.",
    "Il vecchio castello sulla collina fu costruito nel dodicesimo secolo ed è aperto ai visitatori.",
)


@functools.lru_cache(maxsize=4)
def _neutral_vectors(embedder: Embedder) -> np.ndarray:
    return embedder.embed_passages(list(NEUTRAL_TEXTS))


def neutral_similarity(embedder: Embedder, query_vector: np.ndarray) -> float:
    """The question's mean similarity to its 5 closest neutral texts: what an unrelated passage scores."""
    return float(np.sort(_neutral_vectors(embedder) @ query_vector)[-5:].mean())


def margin(embedder: Embedder, query_vector: np.ndarray, top_score: float) -> float:
    """How far the best passage's score stands above the question's mean similarity to its 5 closest neutral texts."""
    return top_score - neutral_similarity(embedder, query_vector)


def is_relevant(embedder: Embedder, query_vector: np.ndarray, top_score: float) -> bool:
    """Whether the best passage is relevant enough to answer from."""
    return margin(embedder, query_vector, top_score) >= MIN_MARGIN
