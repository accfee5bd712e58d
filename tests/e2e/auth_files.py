"""The auth files the authentication tests give the daemon (--auth-file,
memcached's -Y format), written as the daemon wants them: mode 600."""

import os

USER = b"alice"
PASSWORD = b"s3cret-pw"


def write_auth_file(directory, text=b"alice:s3cret-pw\nbob:other:pw\n", mode=0o600, name="auth"):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(text)
    os.chmod(path, mode)
    return path
