"""params.yaml `card:`: what the model card of each registered version says about its use."""

from __future__ import annotations

from pydantic import Field

from .reading import Strict


class CardSettings(Strict):
    """The model card's words (`register` writes one per version): who may use the model for what,
    and what it is known not to do. Empty: the card says that nobody wrote them."""

    intended_use: str = Field(default="", max_length=2000)
    limitations: list[str] = Field(default_factory=list, max_length=30)
