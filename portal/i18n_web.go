package portal

// deWeb is German for the web-hardening pages: the page that hands a form's
// answer on out of the portal, the sign-out confirmation, and the
// provider's error pages.
var deWeb = map[string]string{
	"Continuing": "Weiter",
	"Your browser is taken on now. If nothing happens, continue here:": "Dein Browser wird jetzt weitergeleitet. Falls nichts passiert, geht es hier weiter:",
}
