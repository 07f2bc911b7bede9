"""The book around the library: chapters and their parameters, running them, glued numbers, the report."""
