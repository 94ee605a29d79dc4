"""The provider harness fixtures, for the HTTP provider's attack tests here."""

from tests.providers.conftest import nc, start_provider  # noqa: F401 (fixtures)
