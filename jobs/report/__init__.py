"""The sweep report: what it reads (``source``: a local sweep folder, or W&B through
``wandb_source``), what it says (``analysis``), its figures (``plots``), the page (``render`` and
``templates/report.html.j2``) and the ``report`` command."""
