"""Payload encryption for Temporal (DESIGN §8, issue 16): the key ring (`codec.keys`), the codec
(`codec.payload`) and the data converter every client, worker and Replayer uses (`codec.converter`).

Sits beside store/, calcom/ and channels/: it imports models/ and third-party libraries only.
"""
