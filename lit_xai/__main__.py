"""`python -m lit_xai` is the same as the `lit-xai` command."""

from lit_xai.cli import main

if __name__ == "__main__":
    main()
