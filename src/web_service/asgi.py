from servicekit.entrypoints import asgi_application

application = asgi_application("web_service")
