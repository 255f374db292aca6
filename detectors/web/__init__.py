"""The verification web page (static index.html, app.js, style.css), served at ``/`` by the service."""
