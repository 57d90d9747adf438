"""QA exports for trainers and review labels for training, masked by default.

The CLI (``audit export``) and the dashboard's export page call the same two functions:

    from audit.store.access import Principal
    from audit.export.run import export_packs
    from audit.export.selection import PackQuery

    with open("worst.xlsx", "wb") as fh:
        export_packs(engine, PackQuery(start=day, band="worst", per_store=5), "xlsx", fh,
                     Principal.operator())

Modules: ``selection`` (which conversations), ``packs`` (what a conversation carries, streamed),
``masking`` (personal data and pseudonyms), ``jsonl`` / ``csvfile`` / ``xlsx`` (formats),
``training`` (labelled messages), ``run`` (the audit-logged entry points). Who may export what
is decided by :mod:`audit.store.access`. The command, ``audit export``, is in
:mod:`audit.cli.export`: nothing here imports the CLI.
"""
