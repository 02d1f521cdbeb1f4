"""Secrets and passwords: generated secrets as SHA-256 digests, passwords as argon2id,
every comparison in constant time."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from config.settings import PasswordHashing


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


class Passwords:
    def __init__(self, params: PasswordHashing) -> None:
        self._hasher = PasswordHasher(time_cost=params.time_cost, memory_cost=params.memory_kib,
                                      parallelism=params.parallelism)
        # checked against when the user does not exist, so both cases cost the same
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        # hashes run off the event loop, one per core: more at once only evict each other's
        # memory_kib from the caches, and the same cores then check fewer passwords per second
        self._threads = ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0)), thread_name_prefix="argon2")

    async def hash_async(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.hash, password)

    async def verify_async(self, stored_hash: str | None, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.verify, stored_hash, password)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
