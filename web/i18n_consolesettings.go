package web

// deConsoleSettings is German for the console's settings page and the
// settings rules' fixed messages.
var deConsoleSettings = map[string]string{
	"These settings take effect at once, without a restart. Leave a setting empty to use the default from config.toml.": "Diese Einstellungen gelten sofort, ohne Neustart. Lassen Sie eine Einstellung leer, um den Standardwert aus config.toml zu verwenden.",
	"Default from config.toml: %s": "Standard aus config.toml: %s",
	"In force: %s":                 "Gilt jetzt: %s",
	"Use the default":              "Standard verwenden",
	"Save settings":                "Einstellungen speichern",
	"The settings were saved. They are in force now.":                 "Die Einstellungen wurden gespeichert. Sie gelten ab sofort.",
	"The settings changed since you read them. Reload and try again.": "Die Einstellungen wurden geändert, seit Sie sie gelesen haben. Laden Sie neu und versuchen Sie es noch einmal.",
	"Check “%s”:":                                     "Prüfen Sie „%s“:",
	"Lock profiles":                                   "Profile sperren",
	"Require two-factor authentication":               "Zwei-Faktor-Authentifizierung verlangen",
	"Minimum password length":                         "Mindestlänge des Passworts",
	"Minimum password strength (0–4)":                 "Mindeststärke des Passworts (0–4)",
	"Failed sign-ins per account and address":         "Fehlgeschlagene Anmeldungen je Konto und Adresse",
	"Failed sign-ins per address":                     "Fehlgeschlagene Anmeldungen je Adresse",
	"Window the failures are counted in":              "Zeitraum, in dem Fehlschläge gezählt werden",
	"Failures before an account must wait (0: never)": "Fehlschläge, bis ein Konto warten muss (0: nie)",
	"First wait":                                      "Erste Wartezeit",
	"Longest wait":                                    "Längste Wartezeit",
	"Failures forgotten after":                        "Fehlschläge vergessen nach",
	"Everyone":                                        "Alle",
	"Administrators only":                             "Nur Administratoren",
	"Sign-in lasts (session lifetime)":                "Anmeldung gilt (Sitzungsdauer)",
	"Access token lifetime":                           "Lebensdauer der Access-Tokens",
	"ID token lifetime":                               "Lebensdauer der ID-Tokens",
	"Refresh tokens end after (from sign-in)":         "Refresh-Tokens enden nach (ab der Anmeldung)",
	"Refresh tokens end when unused for":              "Refresh-Tokens enden nach Nichtbenutzung von",
	"Lifetimes apply to the sessions and tokens issued from now on; apps with token lifetimes of their own keep them.": "Lebensdauern gelten für Sitzungen und Tokens, die ab jetzt ausgestellt werden; Apps mit eigenen Token-Lebensdauern behalten diese.",

	// The security notifications' switches.
	"Mail users about a sign-in from a new device":         "Benutzer über eine Anmeldung von einem neuen Gerät benachrichtigen",
	"Mail users when their password changes":               "Benutzer benachrichtigen, wenn ihr Passwort geändert wird",
	"Mail users when a second factor is added or removed":  "Benutzer benachrichtigen, wenn ein zweiter Faktor hinzugefügt oder entfernt wird",
	"Mail users about a new API token or app password":     "Benutzer über ein neues API-Token oder App-Passwort benachrichtigen",
	"Mail users about an API token expiring within 7 days": "Benutzer über ein API-Token benachrichtigen, das innerhalb von 7 Tagen abläuft",
	"Mail users when their account is blocked":             "Benutzer benachrichtigen, wenn ihr Konto gesperrt wird",
}
