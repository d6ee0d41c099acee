from django.core.exceptions import ValidationError

_NORWEGIAN_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def validate_norwegian_organization_number(value: str) -> None:
    """Nine digits whose last is the modulus-11 check digit of the Brønnøysund registers."""
    digits = value.replace(" ", "")
    if len(digits) != 9 or not (digits.isascii() and digits.isdigit()):
        raise ValidationError(
            "A Norwegian organization number has nine digits.", code="invalid_registry_number"
        )
    remainder = sum(int(d) * w for d, w in zip(digits, _NORWEGIAN_WEIGHTS, strict=False)) % 11
    check = 0 if remainder == 0 else 11 - remainder
    if check == 10 or check != int(digits[8]):
        raise ValidationError(
            "This Norwegian organization number fails its check digit.",
            code="invalid_registry_number",
        )
