package web

// deWeb is German for the web-hardening pages: the page that hands a form's
// answer on out of the portal, the sign-out confirmation, and the
// provider's error pages.
var deWeb = map[string]string{
	"Continuing": "Weiter",
	"Your browser is taken on now. If nothing happens, continue here:": "Ihr Browser wird jetzt weitergeleitet. Falls nichts passiert, geht es hier weiter:",

	"Sign out?": "Abmelden?",
	"An application asked Keyport to sign you out. Sign out only if you started this yourself.": "Eine Anwendung hat Keyport gebeten, Sie abzumelden. Melden Sie sich nur ab, wenn Sie das selbst ausgelöst haben.",
	"Do you want to sign out of Keyport in this browser?":                                       "Möchten Sie sich in diesem Browser von Keyport abmelden?",
	"Stay signed in": "Angemeldet bleiben",

	// The provider's error pages (provider/errorpages.go).
	"The application sent a request Keyport cannot accept (%s). Go back to the application and try again; if this keeps happening, tell its administrator.": "Die Anwendung hat eine Anfrage gesendet, die Keyport nicht annehmen kann (%s). Gehen Sie zurück zur Anwendung und versuchen Sie es erneut; wenn das wieder passiert, sagen Sie ihrer Administration Bescheid.",
	"Keyport could not complete this request. Please try again.":               "Keyport konnte diese Anfrage nicht abschließen. Bitte versuchen Sie es noch einmal.",
	"This sign-in request belongs to another browser":                          "Diese Anmeldeanfrage gehört zu einem anderen Browser",
	"Go back to the application and start signing in again from this browser.": "Gehen Sie zurück zur Anwendung und beginnen Sie die Anmeldung in diesem Browser von vorn.",
	"This sign-in request has expired":                                         "Diese Anmeldeanfrage ist abgelaufen",
	"Go back to the application and start again.":                              "Gehen Sie zurück zur Anwendung und beginnen Sie von vorn.",
	"This sign-in request cannot be used":                                      "Diese Anmeldeanfrage kann nicht verwendet werden",
	"Unknown application":                                                      "Unbekannte Anwendung",
	"The application that sent you here is not registered with Keyport (client_id “%s”). Nothing was sent to it. Go back and tell the application's administrator.": "Die Anwendung, die Sie hierher geschickt hat, ist bei Keyport nicht registriert (client_id „%s“). Es wurde nichts an sie gesendet. Gehen Sie zurück und sagen Sie der Administration der Anwendung Bescheid.",
	"This application cannot sign you in here": "Diese Anwendung kann Sie hier nicht anmelden",
	"The application asked Keyport to send you back to an address that is not registered for it: “%s”. Keyport did not go there. Go back and tell the application's administrator.": "Die Anwendung hat Keyport gebeten, Sie zu einer Adresse zurückzuschicken, die für sie nicht registriert ist: „%s“. Keyport hat sie nicht aufgerufen. Gehen Sie zurück und sagen Sie der Administration der Anwendung Bescheid.",
	"Sign-out request not accepted": "Abmeldeanfrage nicht angenommen",
	"The sign-out request comes from an application that is not registered with Keyport (client_id “%s”). Keyport did not sign you out.":                                                                            "Die Abmeldeanfrage kommt von einer Anwendung, die bei Keyport nicht registriert ist (client_id „%s“). Keyport hat Sie nicht abgemeldet.",
	"The sign-out request names an application (client_id “%s”) other than the one its token was issued to. Keyport did not sign you out. Go back and tell the application's administrator.":                        "Die Abmeldeanfrage nennt eine andere Anwendung (client_id „%s“) als die, für die ihr Token ausgestellt wurde. Keyport hat Sie nicht abgemeldet. Gehen Sie zurück und sagen Sie der Administration der Anwendung Bescheid.",
	"The sign-out request carries a token Keyport cannot verify (id_token_hint). Keyport did not sign you out. To sign out, open Keyport's start page and choose “Sign out”.":                                       "Die Abmeldeanfrage enthält ein Token, das Keyport nicht prüfen kann (id_token_hint). Keyport hat Sie nicht abgemeldet. Um sich abzumelden, öffnen Sie die Startseite von Keyport und wählen „Abmelden“.",
	"The application asked to send you, after signing out, to an address that is not registered for it: “%s”. Keyport did not sign you out and did not go there. Go back and tell the application's administrator.": "Die Anwendung wollte Sie nach dem Abmelden zu einer Adresse schicken, die für sie nicht registriert ist: „%s“. Keyport hat Sie nicht abgemeldet und die Adresse nicht aufgerufen. Gehen Sie zurück und sagen Sie der Administration der Anwendung Bescheid.",
	"The application sent a sign-out request Keyport cannot accept (%s). Keyport did not sign you out.":                                                                                                             "Die Anwendung hat eine Abmeldeanfrage gesendet, die Keyport nicht annehmen kann (%s). Keyport hat Sie nicht abgemeldet.",

	// A redirect URI that is registered but refused for its kind.
	"The application asked Keyport to send you back to “%s”. The address is registered for it, but this kind of application may not use an address of that kind. Keyport did not go there. Go back and tell the application's administrator.": "Die Anwendung hat Keyport gebeten, Sie zu „%s“ zurückzuschicken. Die Adresse ist für sie registriert, aber diese Art von Anwendung darf keine Adresse dieser Art verwenden. Keyport hat sie nicht aufgerufen. Gehen Sie zurück und sagen Sie der Administration der Anwendung Bescheid.",
}
