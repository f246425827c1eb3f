package web

// deApps is German for what apps (OIDC clients) show people: the page of
// someone an app does not admit.
var deApps = map[string]string{
	"Access denied": "Zugriff verweigert",
	"Your account is not allowed to use %s. Ask an administrator.": "Ihr Konto darf %s nicht verwenden. Wenden Sie sich an eine Administratorin oder einen Administrator.",
	"Back to %s": "Zurück zu %s",
	// account/audit.go's refusal of read-only credentials.
	"This credential may only read.": "Dieser Zugang darf nur lesen.",
}
