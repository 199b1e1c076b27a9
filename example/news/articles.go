package news

import "context"

// Articles is the source of truth for articles.
//
// Article reads are cached for 10 minutes and tagged with the article and its
// author, so an edit of either drops them. Unknown ids and slugs are cached
// negatively for 30 seconds. The home feed has a short TTL and is dropped by a
// pattern when an article is published; category feeds are tagged per
// category and dropped when an article in it is published or edited. Every
// feed also carries the tag "feed", for dropping all of them at once:
// cache.Invalidate(ctx, runtime.Invalidation{Tags: []string{"feed"}}).
//
// Article pages and feeds are read far more often than they change: they are
// also kept in each instance's memory (local=), coherent across instances.
//
//cache:repo prefix=articles version=1 ttl=10m jitter=10% negative=30s local=1m
type Articles interface {
	// Get returns the article with the given id, or ErrNotFound.
	//
	//cache:get key="article:{id}" notfound=ErrNotFound tags="article:{id},author:{result.AuthorID}"
	Get(ctx context.Context, id int64) (*Article, error)

	// BySlug returns the article with the given slug, or ErrNotFound. Both
	// tags come from the result: the slug alone names neither the article
	// nor its author.
	//
	//cache:get key="article:slug:{slug}" notfound=ErrNotFound tags="article:{result.ID},author:{result.AuthorID}"
	BySlug(ctx context.Context, slug string) (*Article, error)

	// ByIDs returns the articles of ids that exist, in one query: a batch
	// read over Get's entries (a ByIDs fills what a later Get hits, and the
	// other way round; the same invalidations reach both).
	//
	//cache:get key="article:{ids}" notfound=ErrNotFound tags="article:{ids},author:{result.AuthorID}"
	ByIDs(ctx context.Context, ids []int64) (map[int64]*Article, error)

	// HomepageFeed returns page (0-based) of the newest articles. It is the
	// hottest read: reloaded in the background before its TTL ends, and
	// served up to a minute past it while the database is down.
	//
	//cache:get key="feed:home:{page}" ttl=30s local=10s refresh=80 stale=1m tags="feed"
	HomepageFeed(ctx context.Context, page int) ([]Summary, error)

	// CategoryFeed returns page (0-based) of the newest articles of a category.
	//
	//cache:get key="feed:category:{category}:{page}" ttl=2m tags="feed,feed:{category}"
	CategoryFeed(ctx context.Context, category string, page int) ([]Summary, error)

	// Publish inserts a new article and sets a.ID, a.PublishedAt and
	// a.UpdatedAt. It drops every home feed page (pattern), the feeds of the
	// article's category (tag), and negatively cached lookups of its id and
	// slug (the keys are built after the call, so {a.ID} is the new id).
	//
	//cache:evict keys="article:{a.ID},article:slug:{a.Slug}" tags="feed:{a.Category}" patterns="feed:home:*"
	Publish(ctx context.Context, a *Article) error

	// Update saves the title, summary and body of article a.ID (the category
	// and author do not change). It drops the article, everything tagged with
	// it (its slug lookup) and the feeds of its category. The home feed is
	// left to its 30s TTL: dropping every feed on every edit would cost more
	// database reads than the staleness of one title is worth.
	//
	//cache:evict keys="article:{a.ID}" tags="article:{a.ID},feed:{a.Category}"
	Update(ctx context.Context, a *Article) error
}
