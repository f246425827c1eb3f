package web

// deAuthRequest is German for what an app's authorization request asks of
// the sign-in pages (acr_values).
var deAuthRequest = map[string]string{
	"This application asks you to sign in with a passkey.": "Diese Anwendung bittet Sie, sich mit einem Passkey anzumelden.",
}
