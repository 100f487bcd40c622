"""Reading articles: files and folders, saved pages and feeds, URLs, and the rules for fetching them."""
