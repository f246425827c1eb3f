package web

// German for the password strength check and the other policy messages of
// the hardening issue.
var dePolicy = map[string]string{
	"This password is too easy to guess. Use a longer one, for example four or five unrelated words, and avoid common passwords, names, dates and keyboard patterns.": "Dieses Passwort ist zu leicht zu erraten. Nimm ein längeres, zum Beispiel vier oder fünf Wörter ohne Zusammenhang, und meide gängige Passwörter, Namen, Daten und Tastaturmuster.",
	"This password is too easy to guess because it contains your name, username or email address. Choose one without them, for example four or five unrelated words.": "Dieses Passwort ist zu leicht zu erraten, weil es deinen Namen, Benutzernamen oder deine E-Mail-Adresse enthält. Wähle eines ohne sie, zum Beispiel vier oder fünf Wörter ohne Zusammenhang.",
	"An account with your username already exists here. Ask your administrator to link it.":                                                                           "Ein Konto mit deinem Benutzernamen gibt es hier schon. Bitte deine Administration, es zu verknüpfen.",
}
