package portal

// deWeb is German for the web-hardening pages: the page that hands a form's
// answer on out of the portal, the sign-out confirmation, and the
// provider's error pages.
var deWeb = map[string]string{
	"Continuing": "Weiter",
	"Your browser is taken on now. If nothing happens, continue here:": "Dein Browser wird jetzt weitergeleitet. Falls nichts passiert, geht es hier weiter:",

	"Sign out?": "Abmelden?",
	"An application asked Keyport to sign you out. Sign out only if you started this yourself.": "Eine Anwendung hat Keyport gebeten, dich abzumelden. Melde dich nur ab, wenn du das selbst ausgelöst hast.",
	"Do you want to sign out of Keyport in this browser?":                                       "Möchtest du dich in diesem Browser von Keyport abmelden?",
	"Stay signed in": "Angemeldet bleiben",
}
