"""Text as the index sees it: languages, words, sentences, and the passages an article is split into."""
