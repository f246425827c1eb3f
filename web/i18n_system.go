package web

// deSystem is German for system accounts in the console.
var deSystem = map[string]string{
	"Never: a system account for a program, which uses API tokens only": "Nie: ein Systemkonto für ein Programm, das nur API-Tokens verwendet",
	"system account": "Systemkonto",
	"Give this token to the program. It is shown only this once.": "Geben Sie dieses Token dem Programm. Es wird nur dieses eine Mal angezeigt.",
	"until %s":                      "bis %s",
	"New API token":                 "Neues API-Token",
	"What it is for":                "Wofür es ist",
	"Access":                        "Zugriff",
	"Read and write":                "Lesen und schreiben",
	"Read only":                     "Nur lesen",
	"Valid for (days, at most 400)": "Gültig für (Tage, höchstens 400)",
	"Allowed networks (optional)":   "Erlaubte Netze (optional)",
	"Create token":                  "Token erstellen",
	"The API token was revoked.":    "Das API-Token wurde widerrufen.",
	"This is a system account: it cannot sign in, only use its API tokens.":                                    "Dies ist ein Systemkonto: Es kann sich nicht anmelden, nur seine API-Tokens verwenden.",
	"A system account has no password and no invitation: give it API tokens.":                                  "Ein Systemkonto hat weder Passwort noch Einladung: Geben Sie ihm API-Tokens.",
	"%s is a system account: it has no password, only API tokens.":                                             "%s ist ein Systemkonto: Es hat kein Passwort, nur API-Tokens.",
	"Only system accounts get API tokens from an administrator; people make their own on their security page.": "Nur Systemkonten erhalten API-Tokens von einem Administrator; Personen erstellen ihre eigenen auf ihrer Sicherheitsseite.",
	"A system account's token needs an expiry date at most %d days ahead.":                                     "Das Token eines Systemkontos braucht ein Ablaufdatum höchstens %d Tage in der Zukunft.",
	"Enter the number of days the token is valid, from 1 to 400.":                                              "Geben Sie an, wie viele Tage das Token gilt, von 1 bis 400.",
}
