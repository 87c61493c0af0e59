from servicekit.entrypoints import asgi_application

application = asgi_application("users_service")
