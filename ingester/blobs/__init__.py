"""The blob mirror: CID-verified copies of tracks' audio blobs, and the playability checker."""
