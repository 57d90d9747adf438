"""The daily alert digest: content per recipient scope, rendered for e-mail and WeCom, sent
once per (day, channel, recipient).

Modules: ``content`` (the numbers, in SQL), ``render`` and ``templates/`` (Jinja2: HTML,
text, WeCom markdown), ``recipients`` (who, where, which scope), ``channel`` (the interface,
errors and retries), ``smtp`` / ``webhook`` / ``wecom_app`` / ``filesink`` (the channels),
``run`` (claim, send, record), ``configured`` (all of it from ``audit.toml``). The command,
``audit digest``, is in :mod:`audit.cli.digest`: nothing here imports the CLI.
"""
