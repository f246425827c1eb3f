package web

// deLogoutApps is German for logout to apps: the signed-out page's frames
// (front-channel logout) and the app form's logout fields.
var deLogoutApps = map[string]string{
	"Signing you out of your apps too…": "Sie werden auch bei Ihren Apps abgemeldet …",
	"Signing out of an app":             "Abmeldung bei einer App",
	"Front-channel logout URI (loaded in a hidden frame when the person signs out)": "Front-Channel-Logout-URI (wird bei der Abmeldung in einem verborgenen Frame geladen)",
	"Add iss and sid to the front-channel logout URI":                               "iss und sid an die Front-Channel-Logout-URI anhängen",
	"Back-channel logout URI (receives a signed logout token)":                      "Back-Channel-Logout-URI (erhält ein signiertes Logout-Token)",
	"Require sid in the logout token":                                               "sid im Logout-Token verlangen",
}
