"""`portal`: the command-line client of the priority-access compute portal."""
