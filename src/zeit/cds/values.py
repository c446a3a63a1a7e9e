"""Settings given as text (a config file, the command line, a ZCML
attribute a factory declares): converted and validated by their zope.schema
field, with errors in one line that names the key as the user spelled it."""
import os

import zope.schema.interfaces
from zope.schema.interfaces import ValidationError

from zeit.cds.interfaces import SettingsError

# The words for yes and no: configparser's and zope.configuration's.
FLAGS = {word: True for word in ('1', 'yes', 'true', 'on', 'y', 't')}
FLAGS.update({word: False for word in ('0', 'no', 'false', 'off', 'n', 'f')})


class WorkingDirectory:
    """Where a relative path given on the command line or in a config file
    starts (zope.configuration's Path fields ask their context)."""

    def path(self, filename):
        return os.path.abspath(filename)


def converted(field, value, key, context=WorkingDirectory()):
    """The value of ``field`` for ``value`` (text, or already a Python
    value such as the True of a command-line flag), validated.

    Relative paths start at ``context`` (the working directory, or a ZCML
    file's folder). Raises SettingsError naming ``key``.
    """
    field = field.bind(context)
    try:
        if not isinstance(value, str):
            field.validate(value)
            return value
        if zope.schema.interfaces.IBool.providedBy(field):
            return _flag(field, value)
        return field.fromUnicode(value)
    except ValidationError as e:
        raise SettingsError(in_words(key, field, value, e)) from None


def _flag(field, text):
    try:
        value = FLAGS[text.strip().lower()]
    except KeyError:
        raise zope.schema.interfaces.InvalidValue().with_field_and_value(
            field, text) from None
    field.validate(value)
    return value


def in_words(key, field, value, error):
    """What is wrong with ``value`` for ``field``, in one line."""
    if isinstance(error, zope.schema.interfaces.OutOfBounds):
        low, high = getattr(field, 'min', None), getattr(field, 'max', None)
        number = error.value
        if low is not None and high is not None:
            return f'{key} {number} is out of range ({low}-{high})'
        if low is not None:
            return f'{key} must be at least {low}, not {number}'
        return f'{key} must be at most {high}, not {number}'
    if zope.schema.interfaces.IInt.providedBy(field):
        # fromUnicode's InvalidIntLiteral, a ValueError too.
        return f'{key} must be a whole number, not {value!r}'
    if zope.schema.interfaces.IBool.providedBy(field):
        return f'{key}: {value!r} is neither yes nor no'
    reason = (error.__doc__ or type(error).__name__).strip().splitlines()[0]
    return f'{key}: {value!r} is not valid ({reason.rstrip(".").lower()})'
