package errbatch

import "context"

type T struct{ ID int64 }

//cache:repo prefix=t ttl=1m negative=10s
type Bad interface {
	//cache:get key="a:{ids}:{more}"
	TwoSlices(ctx context.Context, ids []int64, more []int64) (map[int64]*T, error)
	//cache:get key="b:{ids}:{x}"
	ExtraPlaceholder(ctx context.Context, ids []int64, x string) (map[int64]*T, error)
	//cache:get key="c:{ids}"
	NotAMap(ctx context.Context, ids []int64) ([]*T, error)
	//cache:get key="d:{ids}"
	WrongKey(ctx context.Context, ids []int64) (map[string]*T, error)
	//cache:get key="e:{ids}"
	ExtraParam(ctx context.Context, ids []int64, limit int) (map[int64]*T, error)
	//cache:get key="f:{ids.X}"
	FieldOfSlice(ctx context.Context, ids []int64) (map[int64]*T, error)
	//cache:get key="g:{id}"
	One(ctx context.Context, id int64) (T, error)
	//cache:get key="g:{ids}"
	Many(ctx context.Context, ids []int64) (map[int64]T, error)
}

//cache:repo prefix=u ttl=1m
type Pointers interface {
	//cache:get key="p:{ids}"
	ByPtr(ctx context.Context, ids []*int64) (map[*int64]*T, error)
}
