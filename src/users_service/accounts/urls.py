from servicekit.urls import route
from users_service.accounts import apis

urlpatterns = [
    route("api/users/register", apis.RegisterApi.as_view(), name="user-register"),
    route("api/users/me", apis.MeApi.as_view(), name="user-me"),
    route("api/users/<uuid:pk>", apis.UserDetailApi.as_view(), name="user-detail"),
    route("api/users", apis.UserListApi.as_view(), name="user-list"),
]
