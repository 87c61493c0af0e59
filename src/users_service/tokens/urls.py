from servicekit.urls import route
from users_service.tokens import apis

urlpatterns = [
    route(".well-known/jwks.json", apis.JwksApi.as_view(), name="jwks"),
    route("api/users/login", apis.LoginApi.as_view(), name="login"),
    route("api/users/token/refresh", apis.RefreshApi.as_view(), name="token-refresh"),
    route("api/users/logout", apis.LogoutApi.as_view(), name="logout"),
    route("api/users/logout/all", apis.LogoutAllApi.as_view(), name="logout-all"),
]
