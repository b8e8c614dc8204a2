"""What our BEP 10 extension handshake tells a peer: the ids we ask it to send each extension's
messages with, and how many requests we queue for it. The wire protocol (``peer_handler``) says
them; the parts that read or limit those messages (``metadata``, ``upload``) take them from here."""

OUR_REQQ = 500  # BEP 10: how many requests we queue for one peer
OUR_UT_METADATA_ID = 2  # BEP 9/10: the id we ask peers to send ut_metadata messages with
OUR_UT_PEX_ID = 3  # BEP 11/10: the id we ask peers to send ut_pex messages with
OUR_UT_HOLEPUNCH_ID = 4  # BEP 55/10: the id we ask peers to send ut_holepunch messages with
OUR_LT_DONTHAVE_ID = 5  # BEP 54/10: the id we ask peers to send lt_donthave messages with
