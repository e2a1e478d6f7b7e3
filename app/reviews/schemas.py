"""Reviewer matching, assignments, reviews, comments and contributions on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from app.core.schemas import RequestModel, ResponseModel

Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
RecommendationIn = Literal["endorse", "revise", "reject"]

CRITERION_LABELS = {
    "clarity": "clarity of the method",
    "rigor": "statistical rigor",
    "documentation": "documentation and reproducibility",
    "significance": "significance",
}


class UserRef(ResponseModel):
    name: str
    display_name: str | None = None
    role: str


# --- expertise and matching ---------------------------------------------------------------


class ExpertiseIn(RequestModel):
    tags: list[Tag] = Field(max_length=30, description="replaces the caller's expertise tags")


class ExpertiseOut(ResponseModel):
    tags: list[str]


class SuggestionOut(ResponseModel):
    reviewer: UserRef
    score: float = Field(description="relevance / (1 + 0.5 × open assignments)")
    relevance: float = Field(description="weighted share of the submission's keywords matched")
    matched: list[str]
    open_assignments: int


# --- assignments --------------------------------------------------------------------------


class AssignmentCreate(RequestModel):
    reviewer: str = Field(min_length=1, max_length=40, description="the reviewer's user name")
    note: str | None = Field(default=None, max_length=2000)


class DeclineIn(RequestModel):
    reason: str = Field(min_length=3, max_length=2000)


class AssignmentOut(ResponseModel):
    id: int
    submission_id: int
    submission_title: str
    benchmark: str
    latest_version: int
    reviewer: UserRef
    assigned_by: str
    status: str
    note: str | None
    decline_reason: str | None
    review_id: int | None = Field(description="the reviewer's newest review of the submission")
    created_at: dt.datetime
    updated_at: dt.datetime


# --- reviews ------------------------------------------------------------------------------


class CriterionIn(RequestModel):
    score: int = Field(ge=1, le=5)
    comment: str = Field(min_length=1, max_length=10_000)


class ReviewCreate(RequestModel):
    version: int | None = Field(default=None, ge=1, description="default: the latest version")
    clarity: CriterionIn
    rigor: CriterionIn
    documentation: CriterionIn
    significance: CriterionIn
    recommendation: RecommendationIn
    summary: str = Field(default="", max_length=20_000)
    corrects: int | None = Field(
        default=None, description="id of one's own published review this one corrects"
    )
    publish: bool = Field(default=False, description="publish now instead of saving a draft")


class ReviewUpdate(RequestModel):
    clarity: CriterionIn | None = None
    rigor: CriterionIn | None = None
    documentation: CriterionIn | None = None
    significance: CriterionIn | None = None
    recommendation: RecommendationIn | None = None
    summary: str | None = Field(default=None, max_length=20_000)


class CriterionOut(ResponseModel):
    label: str
    score: int
    comment: str


class ReviewOut(ResponseModel):
    id: int
    submission_id: int
    version: int
    is_latest_version: bool
    reviewer: UserRef
    status: str
    criteria: dict[str, CriterionOut]
    mean_score: float
    recommendation: str
    summary: str
    corrects: int | None
    corrected_by: int | None = Field(description="the published review that corrects this one")
    created_at: dt.datetime
    updated_at: dt.datetime
    published_at: dt.datetime | None


class ScoreMeans(ResponseModel):
    reviews: int
    criteria: dict[str, float | None]
    overall: float | None = Field(description="mean of the four criterion means")
    recommendations: dict[str, int]


class VersionReviewMeans(ScoreMeans):
    version: int


class ReviewSummary(ResponseModel):
    """Mean review scores, shown beside the quality score (they never enter it)."""

    submission_id: int
    latest_version: int
    quality: float | None = Field(description="the latest version's quality score, for contrast")
    verdict: str | None
    latest: ScoreMeans
    all_versions: ScoreMeans
    by_version: list[VersionReviewMeans]


# --- comments -----------------------------------------------------------------------------


class CommentCreate(RequestModel):
    body: str = Field(
        min_length=1, max_length=20_000, description="Markdown; raw HTML is shown as text"
    )
    parent_id: int | None = Field(default=None, description="the comment this one replies to")


class CommentUpdate(RequestModel):
    body: str = Field(min_length=1, max_length=20_000)


class HideIn(RequestModel):
    reason: str = Field(min_length=3, max_length=200, examples=["off-topic"])


class CommentAuthor(UserRef):
    is_submission_author: bool


class HiddenOut(ResponseModel):
    reason: str
    notice: str = Field(examples=["hidden by a maintainer: off-topic"])
    at: dt.datetime


class CommentOut(ResponseModel):
    id: int
    parent_id: int | None
    thread_id: int
    depth: int
    version: int
    author: CommentAuthor
    body: str | None = Field(description="the Markdown source; null when hidden")
    body_html: str | None = Field(description="sanitised HTML; null when hidden")
    created_at: dt.datetime
    edited: bool
    edited_at: dt.datetime | None
    editable_until: dt.datetime
    hidden: HiddenOut | None
    replies: list[CommentOut] = Field(default_factory=list)


# --- recognition --------------------------------------------------------------------------


class Contributions(ResponseModel):
    authored: int = Field(description="own submissions (not attempts) with a published verdict")
    authored_reproduced: int = Field(description="of those, reproduced or exceeded")
    attempts_contributed: int = Field(description="challenge attempts submitted")
    attempts_judged: int = Field(description="challenge attempts with a verdict")
    claims_reproduced: int = Field(description="challenges where an attempt reproduced the claim")
    reviews_published: int = Field(description="published reviews, corrections not counted")
    comments: int
    points: int = Field(description="authored + attempts_judged + reviews_published")


class ContributionsOut(ResponseModel):
    user: UserRef
    expertise: list[str]
    contributions: Contributions


class ContributorOut(ResponseModel):
    rank: int
    user: UserRef
    contributions: Contributions
