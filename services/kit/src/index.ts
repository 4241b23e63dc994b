// @sagamesh/kit: the shared runtime of every service (contract: API.md).
