package web

// deSigningAlgorithms is German for the app form's signing algorithm.
var deSigningAlgorithms = map[string]string{
	"ID token signing algorithm":                           "Signaturalgorithmus der ID-Tokens",
	"The server's default":                                 "Standard des Servers",
	"Userinfo signing algorithm (signed userinfo answers)": "Signaturalgorithmus für Userinfo (signierte Userinfo-Antworten)",
	"None: plain JSON":                                     "Keiner: einfaches JSON",
}
