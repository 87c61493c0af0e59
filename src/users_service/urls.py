from servicekit.urls import common_urlpatterns
from users_service.accounts import urls as account_urls
from users_service.tokens import urls as token_urls

urlpatterns = [
    *common_urlpatterns(),
    *token_urls.urlpatterns,
    *account_urls.urlpatterns,
]

handler400 = "servicekit.problems.handler400"
handler403 = "servicekit.problems.handler403"
handler404 = "servicekit.problems.handler404"
handler500 = "servicekit.problems.handler500"
