"""Server-rendered pages (Jinja2): home, benchmarks, submissions, profiles, challenges."""
