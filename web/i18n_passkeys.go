package web

// dePasskeys is German for the passkeys page, the passkey parts of the
// sign-in pages, and the messages of the passkey ceremonies (shown on the
// pages and in the script's JSON answers).
var dePasskeys = map[string]string{
	// templates/passkeys.html
	"A passkey signs you in with your device's screen lock or a security key, without a password. It also works as the second step after your password.": "Ein Passkey meldet Sie mit der Bildschirmsperre Ihres Geräts oder einem Sicherheitsschlüssel an, ohne Passwort. Er dient auch als zweiter Schritt nach Ihrem Passwort.",
	"Name":                                "Name",
	"Created":                             "Erstellt",
	"Last used":                           "Zuletzt verwendet",
	"Never":                               "Nie",
	"Rename":                              "Umbenennen",
	"Remove":                              "Entfernen",
	"Your password":                       "Ihr Passwort",
	"You have no passkeys yet.":           "Sie haben noch keine Passkeys.",
	"Add a passkey":                       "Passkey hinzufügen",
	"Name (for example: Laptop, YubiKey)": "Name (zum Beispiel: Laptop, YubiKey)",
	"Adding a passkey needs JavaScript.":  "Zum Hinzufügen eines Passkeys wird JavaScript benötigt.",
	"Passkeys need Keyport to be reached by a domain name (its issuer URL), not an IP address. Ask your administrator.": "Passkeys brauchen einen Domainnamen für Keyport (seine Issuer-URL), keine IP-Adresse. Fragen Sie Ihre Administration.",
	"Your passkey was added.":  "Ihr Passkey wurde hinzugefügt.",
	"The passkey was removed.": "Der Passkey wurde entfernt.",
	"The passkey was renamed.": "Der Passkey wurde umbenannt.",

	// Messages webauthn.js shows for what the browser reports (login.html,
	// passkeys.html).
	"Sign in with a passkey":                                            "Mit einem Passkey anmelden",
	"This browser cannot use passkeys.":                                 "Dieser Browser kann keine Passkeys verwenden.",
	"The passkey request was cancelled or timed out. Please try again.": "Die Passkey-Anfrage wurde abgebrochen oder ist abgelaufen. Bitte versuchen Sie es erneut.",
	"This device already holds one of your passkeys.":                   "Auf diesem Gerät ist schon einer Ihrer Passkeys gespeichert.",
	"Something went wrong. Please reload the page and try again.":       "Etwas ist schiefgelaufen. Bitte laden Sie die Seite neu und versuchen Sie es erneut.",

	// account/passkeys.go
	"That passkey is not on your list.":                                            "Dieser Passkey steht nicht auf Ihrer Liste.",
	"This passkey is already registered.":                                          "Dieser Passkey ist schon registriert.",
	"Give the passkey a name of 1 to 64 characters.":                               "Geben Sie dem Passkey einen Namen mit 1 bis 64 Zeichen.",
	"You already have a passkey with this name.":                                   "Sie haben schon einen Passkey mit diesem Namen.",
	"You have no passkey yet.":                                                     "Sie haben noch keinen Passkey.",
	"The passkey answer is too large.":                                             "Die Antwort des Passkeys ist zu groß.",
	"The passkey answer could not be read.":                                        "Die Antwort des Passkeys konnte nicht gelesen werden.",
	"Passkeys are not available on this server.":                                   "Passkeys sind auf diesem Server nicht verfügbar.",
	"This passkey request has expired. Please try again.":                          "Diese Passkey-Anfrage ist abgelaufen. Bitte versuchen Sie es erneut.",
	"The passkey could not be registered. Please try again.":                       "Der Passkey konnte nicht registriert werden. Bitte versuchen Sie es erneut.",
	"The passkey could not be verified. Try again, or use another way to sign in.": "Der Passkey konnte nicht geprüft werden. Versuchen Sie es erneut oder melden Sie sich anders an.",
}
