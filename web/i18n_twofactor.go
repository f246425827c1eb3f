package web

// deTwoFactor is German for the second sign-in step.
var deTwoFactor = map[string]string{
	"Two-factor authentication":                              "Zwei-Faktor-Anmeldung",
	"Code from your authenticator app":                       "Code aus Ihrer Authenticator-App",
	"Remember this device for %d days":                       "Dieses Gerät %d Tage lang merken",
	"Verify":                                                 "Bestätigen",
	"Or use one of your passkeys.":                           "Oder verwenden Sie einen Ihrer Passkeys.",
	"Confirm with one of your passkeys.":                     "Bestätigen Sie mit einem Ihrer Passkeys.",
	"Use a passkey":                                          "Passkey verwenden",
	"Recovery code":                                          "Wiederherstellungscode",
	"Use recovery code":                                      "Wiederherstellungscode verwenden",
	"Use my authenticator app instead":                       "Stattdessen meine Authenticator-App verwenden",
	"Lost your device? Use a recovery code.":                 "Gerät verloren? Verwenden Sie einen Wiederherstellungscode.",
	"That recovery code is not correct or was already used.": "Dieser Wiederherstellungscode ist nicht richtig oder wurde schon verwendet.",
	"Your sign-in has timed out. Please sign in again.":      "Ihre Anmeldung ist abgelaufen. Bitte melden Sie sich erneut an.",
	"Cancel and sign in with another account":                "Abbrechen und mit einem anderen Konto anmelden",
}
