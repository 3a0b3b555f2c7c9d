"""`python -m devstack.stack`: the local stack in the foreground (see `devstack.stack.cli`)."""

from devstack.stack.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
