"""PostgreSQL and Redis: lifetimes, migrations, and one module per aggregate."""
