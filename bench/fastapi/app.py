"""The comparison stack of issue 30: CreateWorkspace as a FastAPI service
would write it, with SQLAlchemy's async ORM over asyncpg, on the service's
own PostgreSQL schema (the database workspace-bench filled).

`POST /api/v1/workspaces` with `Authorization: Bearer <API token>` and
`{"name": …}` (seed 000's route and body) does the work the service's
create does against the database, the ORM's way:

  1. the API token by its SHA-256 hash, unexpired, with its user (401);
  3. the user's organization memberships with their organization and plan
     (403 when none);
  4. the user is validated (403);
  5. the role is allowed by the organization's creation policy (403);
  6. the plan allows creating workspaces (403);
  9. the organization's row locked (SELECT … FOR UPDATE), its workspace
     count below the plan's limit (403), raised, with its event number;
 10. the name's key (NFKC, case-folded; the service also folds look-alike
     scripts, which costs it more) unique in the organization: the unique
     index answers, an IntegrityError is 409;
 11. the workspace, the creator's OWNER membership and a 420-byte outbox
     event in the same transaction, written as sent (as the ceilings write
     theirs: the payload is no WorkspaceEvent, and the service's relay
     never reads a sent event).

Answers 201 with the workspace as JSON through a pydantic model. Run with
two uvicorn workers by workspace-bench (`--fastapi PYTHON`):

  python -m uvicorn app:app --app-dir bench/fastapi --workers 2 \
      --no-access-log --port PORT
  DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench

Requirements: bench/fastapi/requirements.txt.
"""

import datetime
import hashlib
import os
import unicodedata
import uuid

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Uuid,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ENGINE = create_async_engine(
    os.environ["DATABASE_URL"],
    pool_size=int(os.environ.get("POOL_SIZE", "10")),
    max_overflow=0,
)
SESSIONS = async_sessionmaker(ENGINE, expire_on_commit=False)
EVENT_PAYLOAD = b"\x2a" * 420


class Base(DeclarativeBase):
    pass


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Plan(Base):
    __tablename__ = "plans"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    creation_allowed: Mapped[bool] = mapped_column(Boolean)
    workspace_limit: Mapped[int | None] = mapped_column(Integer)


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plans.id"))
    workspace_creation: Mapped[str] = mapped_column(String)
    workspace_count: Mapped[int] = mapped_column(Integer)
    event_sequence: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    validated: Mapped[bool] = mapped_column(Boolean)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String)
    expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    organization_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class OrganizationMembership(Base):
    __tablename__ = "organization_memberships"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String)


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String)
    normalized_name: Mapped[str] = mapped_column(String)
    description: Mapped[str] = mapped_column(String)
    workspace_type: Mapped[str] = mapped_column(String)
    document_upload_method: Mapped[str] = mapped_column(String)
    billing_account_email: Mapped[str] = mapped_column(String)
    used_storage: Mapped[float] = mapped_column(Float)
    files_count: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    revision: Mapped[int] = mapped_column(BigInteger)


class WorkspaceMembership(Base):
    __tablename__ = "workspace_memberships"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    role: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    workspace_created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class Event(Base):
    __tablename__ = "events"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    sequence: Mapped[int] = mapped_column(BigInteger)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id"))
    event_type: Mapped[str] = mapped_column(String)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    occurred_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))


class CreateWorkspace(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=2000)
    workspaceType: str = "CUSTOM"
    documentUploadMethod: str = "MANUAL"


class WorkspaceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str
    workspace_type: str
    document_upload_method: str
    created_by: uuid.UUID
    created_at: datetime.datetime
    updated_at: datetime.datetime
    revision: int


async def session():
    async with SESSIONS() as s:
        yield s


app = FastAPI()


@app.get("/healthz")
async def healthz():
    return {"status": "SERVING"}


def may_create(membership: OrganizationMembership, organization: Organization) -> bool:
    if membership.role in ("OWNER", "ADMIN"):
        return True
    policy = organization.workspace_creation
    return policy == "ALL_MEMBERS" or (
        policy == "ROLE_BASED" and membership.role == "WORKSPACE_CREATOR"
    )


@app.post("/api/v1/workspaces", status_code=201, response_model=WorkspaceOut)
async def create_workspace(
    body: CreateWorkspace,
    authorization: str = Header(),
    db: AsyncSession = Depends(session),
):
    scheme, _, token = authorization.partition(" ")
    if scheme != "Bearer" or not token:
        raise HTTPException(401, "a Bearer token is needed")
    digest = hashlib.sha256(token.encode()).hexdigest()
    async with db.begin():
        found = (
            await db.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == digest)
            )
        ).first()
        if found is None:
            raise HTTPException(401, "unknown token")
        api_token, user = found
        if api_token.expires_at is not None and api_token.expires_at <= now():
            raise HTTPException(401, "expired token")
        memberships = (
            await db.execute(
                select(OrganizationMembership, Organization, Plan)
                .join(Organization, Organization.id == OrganizationMembership.organization_id)
                .join(Plan, Plan.id == Organization.plan_id)
                .where(OrganizationMembership.user_id == user.id)
                .order_by(OrganizationMembership.organization_id)
                .limit(2)
            )
        ).all()
        if len(memberships) != 1:
            raise HTTPException(403, "the caller is in no organization, or in several")
        membership, organization, plan = memberships[0]
        if not user.validated:
            raise HTTPException(403, "the user is not validated")
        if not may_create(membership, organization):
            raise HTTPException(403, "the organization's policy forbids it")
        if not plan.creation_allowed:
            raise HTTPException(403, "the plan forbids creating workspaces")
        organization = (
            await db.execute(
                select(Organization)
                .where(Organization.id == organization.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        if plan.workspace_limit is not None and organization.workspace_count >= plan.workspace_limit:
            raise HTTPException(403, "the plan's workspace limit is reached")
        at = now()
        organization.workspace_count += 1
        organization.event_sequence += 1
        organization.updated_at = at
        workspace = Workspace(
            id=uuid.uuid4(),
            organization_id=organization.id,
            name=body.name,
            normalized_name=unicodedata.normalize("NFKC", body.name).casefold(),
            description=body.description,
            workspace_type=body.workspaceType,
            document_upload_method=body.documentUploadMethod,
            billing_account_email="",
            used_storage=0.0,
            files_count=0,
            created_by=user.id,
            created_at=at,
            updated_at=at,
            revision=1,
        )
        db.add(workspace)
        db.add(
            WorkspaceMembership(
                id=uuid.uuid4(),
                workspace_id=workspace.id,
                user_id=user.id,
                role="OWNER",
                created_at=at,
                updated_at=at,
                organization_id=organization.id,
                workspace_created_at=at,
            )
        )
        db.add(
            Event(
                id=uuid.uuid4(),
                organization_id=organization.id,
                sequence=organization.event_sequence,
                workspace_id=workspace.id,
                event_type="workspace.created",
                payload=EVENT_PAYLOAD,
                occurred_at=at,
                sent_at=at,
            )
        )
        try:
            await db.flush()
        except IntegrityError:
            raise HTTPException(409, "a workspace of that name exists in the organization")
    return workspace
