"""Reading finished run directories back into tables and figures (`python -m harness tables`, `paper`)."""
