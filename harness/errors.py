"""User-facing errors: each carries one line that names the bad value and what is accepted."""


class HarnessError(Exception):
    """An error caused by input (config, data, names); the CLI prints it as one line, no traceback."""


class DivergenceError(HarnessError):
    """Training produced a non-finite loss; the last good checkpoint is kept."""


def one_of(kind: str, value: object, accepted) -> HarnessError:
    accepted = sorted(accepted)
    return HarnessError(f"unknown {kind} {value!r}; accepted: {', '.join(map(str, accepted))}")
