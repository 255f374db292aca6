"""FoleySeal detectors: the verification engine behind the Python API, the CLI, the HTTP
service and the web page.

Entry point: ``from detectors.verify import verify`` -> :class:`detectors.report.VerificationReport`.
Verdicts and the report live in :mod:`detectors.report`; the HTTP service in
:mod:`detectors.service`; the web page in ``detectors/web/``.
"""
