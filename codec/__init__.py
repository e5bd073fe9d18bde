"""Payload encryption for Temporal (docs/design.md §8): the key ring (`codec.keys`), the codec
(`codec.payload`) and the data converter every client, worker and Replayer uses (`codec.converter`).

Sits beside store/, calcom/ and channels/: it imports models/ and third-party libraries only.
"""
