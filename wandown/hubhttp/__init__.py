"""HTTP to the Hub and its CDN, one way for the engine and the metadata client alike.

`retry.py` says when to try again and how long to wait (what the server asks, backoff);
`urls.py` says who may receive what (origins, credentials, redirects, how wandown names
itself, timeouts); `messages.py` turns every failure into the sentence the user reads.
"""
