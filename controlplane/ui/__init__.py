"""The control plane's live dashboard (``/ui``): plain HTML, CSS and JavaScript, no build step.

``index.html`` lays out the page; ``app.js`` polls ``/v1/hosts``, ``/v1/applications`` and ``/v1/links``
and follows ``/v1/events``; ``style.css`` styles it. Served by ``lattice.controlplane.api``.
"""
