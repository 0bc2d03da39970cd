"""The studio's screens: the main studio and its dialogs."""
