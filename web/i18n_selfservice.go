package web

// deSelfService is German for the connected apps (App access page) and
// signing out one browser (Activity page).
var deSelfService = map[string]string{
	"Connected apps": "Verbundene Apps",
	"Apps you allowed to use your Keyport account. Revoking one ends its access at once; the next time you sign in to it, it asks for your consent again.": "Apps, denen Sie die Nutzung Ihres Keyport-Kontos erlaubt haben. Widerrufen Sie eine, endet ihr Zugriff sofort; wenn Sie sich das nächste Mal bei ihr anmelden, fragt sie erneut nach Ihrer Zustimmung.",
	"Allowed to":                             "Darf",
	"Consent given":                          "Zugestimmt am",
	"deleted app":                            "gelöschte App",
	"Revoke the access of %s":                "Zugriff von %s widerrufen",
	"No app has asked for your consent yet.": "Bisher hat noch keine App nach Ihrer Zustimmung gefragt.",
	"Not since the consent":                  "Seit der Zustimmung nicht",
	"The app's access was revoked. It asks for your consent again the next time you sign in to it.": "Der Zugriff der App wurde widerrufen. Wenn Sie sich das nächste Mal bei ihr anmelden, fragt sie erneut nach Ihrer Zustimmung.",
	"This app is not connected to your account.":                                                    "Diese App ist nicht mit Ihrem Konto verbunden.",
	// account/audit.go's refusal, which TestGermanAccountMessages asks for
	// (RevokeApp and EndUserSession return it to read-only actors).
	"This credential may only read.":        "Diese Zugangsdaten dürfen nur lesen.",
	"You may change only your own account.": "Sie dürfen nur Ihr eigenes Konto ändern.",
	"Sign out this browser":                 "Diesen Browser abmelden",
	"Sign out %s":                           "%s abmelden",
	"That browser was signed out.":          "Dieser Browser wurde abgemeldet.",
	"This browser is no longer signed in.":  "Dieser Browser ist nicht mehr angemeldet.",
}
