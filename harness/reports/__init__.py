"""Reading finished run directories back: tables and figures (`tables`, `paper`), verdicts (`compare`), and the
generated blocks of README.md and docs/ (`docs`)."""
