package web

// German for the password strength check and the other policy messages of
// the hardening issue.
var dePolicy = map[string]string{
	"This password is too easy to guess. Use a longer one, for example four or five unrelated words, and avoid common passwords, names, dates and keyboard patterns.": "Dieses Passwort ist zu leicht zu erraten. Nehmen Sie ein längeres, zum Beispiel vier oder fünf Wörter ohne Zusammenhang, und meiden Sie gängige Passwörter, Namen, Daten und Tastaturmuster.",
	"This password is too easy to guess because it contains your name, username or email address. Choose one without them, for example four or five unrelated words.": "Dieses Passwort ist zu leicht zu erraten, weil es Ihren Namen, Benutzernamen oder Ihre E-Mail-Adresse enthält. Wählen Sie eines ohne diese Angaben, zum Beispiel vier oder fünf Wörter ohne Zusammenhang.",
	"An account with your username already exists here. Ask your administrator to link it.":                                                                           "Ein Konto mit Ihrem Benutzernamen gibt es hier schon. Bitten Sie Ihre Administration, es zu verknüpfen.",
}
