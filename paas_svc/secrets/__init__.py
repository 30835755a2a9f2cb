"""Service credentials and the master key that encrypts them, one module per job:

- generate: new credentials (letters and digits only);
- box: Fernet encryption under one or more keys (the only module importing cryptography);
- keyfile: the key files in the home (master.key, master.key.next, master.key.old-*) and the key lock;
- vault: decrypting a service's credentials, the key checked against the state first;
- rotation: `paas key rotate` and `--drop-old`, and finishing a rotation a crash interrupted;
- transfer: `paas key export` and `paas key import`.

Nothing here prints: results are returned and the CLI renders them. Imports stay lazy
(this file imports nothing) so hot commands load only what they use.
"""
